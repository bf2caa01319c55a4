require "fileinto";
if exists ["subject", "date"] { fileinto "HasBoth"; }
if exists "x-empty" { fileinto "HasEmpty"; }
