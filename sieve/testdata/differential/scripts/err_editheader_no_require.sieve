addheader "X-A" "b";
