if header :is 1 "x" { keep; }
