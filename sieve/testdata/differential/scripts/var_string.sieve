require ["variables", "fileinto"];
set "empty" "";
if string :is "${empty}" "" { fileinto "Empty"; }
if string :is "${undefined}" "" { fileinto "Undefined"; }
if string :contains ["abc", "xyz"] "y" { fileinto "List"; }
if string :matches "${empty}" "*" { fileinto "StarEmpty"; }
