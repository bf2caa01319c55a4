require "fileinto";
if header :contains ["subject", "from"] ["budget", "[dev]", "Alice"] { fileinto "Hit"; }
