require ["body", "fileinto"];
if body :contains "pineapple" { fileinto "Nested"; }
if body :content "message/rfc822" :contains "original" { fileinto "RfcPart"; }
