"""Everything that reads: the vector queries among them."""
