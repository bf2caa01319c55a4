require "fileinto";
if address :is "cc" "ben@example.net" { fileinto "GroupMember"; }
if address :is "cc" "me@example.org" { fileinto "AfterGroup"; }
if address :matches "to" "*" { fileinto "ToHasAddress"; }
if header :contains "to" "undisclosed" { fileinto "ToHeader"; }
