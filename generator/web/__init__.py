"""The web page: students see and answer their own variant of an assignment."""
