require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "8" {
  fileinto "Junk";
}
