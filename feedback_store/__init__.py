"""The log of every exchange, the feedback on it, and the verified examples (Chroma)."""
