require ["editheader", "index", "fileinto"];
addheader "X-Pos" "first";
addheader :last "X-Pos" "last";
if header :index 1 :is "x-pos" "first" { fileinto "FirstOnTop"; }
if header :index 1 :last :is "x-pos" "last" { fileinto "LastAtBottom"; }
if header :index 1 :is "received" "x" { stop; }
