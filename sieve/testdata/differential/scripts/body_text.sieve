require ["body", "fileinto"];
if body :text :contains "SAVE20" { fileinto "PlainPart"; }
if body :text :contains "unsubscribe" { fileinto "HtmlPart"; }
if body :text :contains "<b>" { fileinto "HtmlTag"; }
