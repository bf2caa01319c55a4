if header :comparator "i;ascii-numeric" :is "x-count" "1" { keep; }
