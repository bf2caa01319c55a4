require ["virustest", "variables", "fileinto"];
if virustest :comparator "i;ascii-casemap" :matches "*" { fileinto "virus-${1}"; }
