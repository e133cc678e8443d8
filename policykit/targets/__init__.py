"""One compiler per enforcement target (``rego``, ...), all reading the IR."""
