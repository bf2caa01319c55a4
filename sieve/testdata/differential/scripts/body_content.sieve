require ["body", "fileinto"];
if body :content "text/html" :contains "unsubscribe" { fileinto "Html"; }
if body :content "text/plain" :contains "unsubscribe" { fileinto "Plain"; }
if body :content "text" :contains "SAVE20" { fileinto "AnyText"; }
