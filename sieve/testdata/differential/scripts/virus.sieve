require ["virustest", "relational", "comparator-i;ascii-numeric", "variables", "fileinto"];
if virustest :matches "*" { set "v" "${1}"; }
if virustest :value "ge" :comparator "i;ascii-numeric" "4" { fileinto "Infected-${v}"; }
elsif virustest :is "0" { fileinto "Unscanned"; }
else { fileinto "Clean-${v}"; }
