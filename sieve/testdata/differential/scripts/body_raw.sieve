require ["body", "fileinto"];
if body :raw :contains "=E2=82=AC" { fileinto "RawQP"; }
if body :raw :contains "--mix" { fileinto "RawBoundary"; }
if body :contains "€" { fileinto "DecodedEuro"; }
if body :text :contains "€" { fileinto "TextEuro"; }
