require ["fileinto"]; # hash comment
/* a bracketed
   comment */ if /* inline */ header :contains "subject" "meeting" { fileinto "C"; }
