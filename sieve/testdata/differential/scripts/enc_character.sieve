require ["encoded-character", "fileinto"];
if header :contains "subject" "${unicode:00FC}" { fileinto "Umlaut"; }
if header :is "to" "${hex:41 6e 64 72 c3 a9} <me@example.org>" { fileinto "HexAndre"; }
if header :contains "subject" "${hex:4d65}eting" { fileinto "HexMe"; }
