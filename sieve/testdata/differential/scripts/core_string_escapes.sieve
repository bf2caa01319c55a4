require "fileinto";
if header :is "subject" "Sale *50%* off? now \\ only" { fileinto "Backslash"; }
if header :is "from" "\"Star \\\"Quoted\\\" Sender\" <star*sender@example.com>" { fileinto "QuotedFrom"; }
