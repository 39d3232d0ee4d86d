"""Knowledge base: parse sources, chunk them, index them in Qdrant from the SQL record."""
