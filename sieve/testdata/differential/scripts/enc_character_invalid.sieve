require ["encoded-character", "fileinto"];
if header :contains "x-literal" "x" { stop; }
fileinto "lit-${hex:zz}-${unicode:}-${HEX:41}${Unicode:42}";
