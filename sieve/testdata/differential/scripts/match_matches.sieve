require "fileinto";
if header :matches "subject" "*tomorrow*" { fileinto "Star"; }
if header :matches "subject" "Meeting tomorrow at ??" { fileinto "TwoQ"; }
if header :matches "subject" "Meeting tomorrow at ?" { fileinto "OneQ"; }
if header :matches "subject" "*" { fileinto "Any"; }
if header :matches "subject" "" { fileinto "EmptyPattern"; }
