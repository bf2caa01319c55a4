require "fileinto";
if header :is "x-multi" "second" { fileinto "Second"; }
if header :is "X-MULTI" "first" { fileinto "First"; }
