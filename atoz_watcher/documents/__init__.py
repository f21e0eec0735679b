"""Documents the API asks for: the writer (Upload, UploadSftp) and the materialiser."""
