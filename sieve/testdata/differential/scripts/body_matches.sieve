require ["body", "fileinto"];
if body :matches "*room 4.2*" { fileinto "Room"; }
if body :matches "Hi,*" { fileinto "Start"; }
if body :is "x" { fileinto "Is"; }
