"""Problems to documents: the sheet, the key (TeX and JSON), rendering, PDFs, presets, the templates."""
