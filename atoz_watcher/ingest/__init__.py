"""Files in the A-to-Z tree -> document rows, exactly once: walk, resolver, registrar, rescans."""
