"""Pictures: thumbnails, DICOM windowing, mount composites, and the queue that renders them."""
