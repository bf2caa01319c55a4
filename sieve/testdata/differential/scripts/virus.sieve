require ["virustest", "relational", "comparator-i;ascii-numeric", "fileinto"];
if virustest :value "ge" :comparator "i;ascii-numeric" "4" { fileinto "Infected"; }
elsif virustest :is "0" { fileinto "Unscanned"; }
elsif virustest :value "eq" :comparator "i;ascii-numeric" "3" { fileinto "Suspicious"; }
else { fileinto "Clean"; }
