"""One router per file; app.py includes them all."""
