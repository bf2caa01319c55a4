require "fileinto";
if header :matches "subject" "Sale \\*50%\\* off\\? now \\\\ only" { fileinto "Escaped"; }
if header :matches "subject" "Sale ?50%? off* now*" { fileinto "Wild"; }
if header :matches "subject" "Sale \\*50%\\?*" { fileinto "WrongEscape"; }
if header :contains "subject" "*50%*" { fileinto "ContainsStar"; }
