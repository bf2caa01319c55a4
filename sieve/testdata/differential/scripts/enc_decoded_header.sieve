require "fileinto";
if header :contains "subject" "Köln" { fileinto "Decoded"; }
if header :contains "subject" "=?UTF-8?" { fileinto "Raw"; }
if header :contains "from" "Müller" { fileinto "FromName"; }
if address :is "from" "juergen@example.de" { fileinto "Addr"; }
