require ["fileinto", "comparator-i;ascii-numeric"];
if header :is :comparator "i;ascii-numeric" "x-count" "42" { fileinto "FortyTwo"; }
if header :is :comparator "i;ascii-numeric" "x-priority" "3" { fileinto "Three"; }
if header :is :comparator "i;ascii-numeric" "subject" "0" { fileinto "NonDigitZero"; }
