require "relational";
if header :count :matches "subject" "1" { keep; }
