require ["variables", "fileinto"];
set "x" "X";
fileinto "${ x }-${x-y}-${1x}-${}-${x}-$${x}-${${x}}";
