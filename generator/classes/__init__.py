"""Class sets: the assignment, the roster, a variant per student, class documents and their PDFs, QR codes."""
