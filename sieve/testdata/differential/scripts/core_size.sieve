require "fileinto";
if size :over 10K { fileinto "Big"; }
elsif size :under 200 { fileinto "Tiny"; }
else { fileinto "Medium"; }
