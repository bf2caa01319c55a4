if header :frob "subject" "x" { keep; }
