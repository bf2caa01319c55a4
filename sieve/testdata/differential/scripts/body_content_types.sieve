require ["body", "fileinto"];
if body :content "application/pdf" :contains "secret" { fileinto "PdfDecoded"; }
if body :content "application" :contains "JVBER" { fileinto "PdfRaw"; }
if body :content "multipart" :contains "invoice" { fileinto "Multipart"; }
if body :content "" :contains "invoice" { fileinto "AnyPart"; }
