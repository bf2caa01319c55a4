if header :comparator "i;frobnicate" :is "subject" "x" { keep; }
