"""The question lifecycle: accept, answer once, deliver once, recover; conversations and their transcripts."""
