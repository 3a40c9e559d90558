"""Articles: files of every supported format read, decoded and cleaned into `Article` records with stable ids."""
