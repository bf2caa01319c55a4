require "fileinto";
if size :under 1k { fileinto "UnderK"; }
if size :over 0 { fileinto "OverZero"; }
