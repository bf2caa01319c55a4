require "fileinto";
if address :is "resent-from" "assistant@example.com" { fileinto "Resent"; }
if address :all :is "reply-to" "replies@example.com" { fileinto "ReplyTo"; }
