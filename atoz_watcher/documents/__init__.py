"""Documents the API asks for: the writer (Upload, UploadSftp), its checks and the materialiser."""
