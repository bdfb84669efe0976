"""Recording on the POD: fMP4 files by camera and UTC date, their SQLite index, retention."""
