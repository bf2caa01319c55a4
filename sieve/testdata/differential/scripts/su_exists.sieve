require ["special-use", "fileinto"];
if specialuse_exists "\\Junk" { fileinto "HaveJunk"; }
if specialuse_exists "Junk" "\\Junk" { fileinto "JunkIsJunk"; }
if specialuse_exists "Lists" "\\Junk" { fileinto "ListsIsJunk"; }
if specialuse_exists ["\\Junk", "\\Sent"] { fileinto "JunkAndSent"; }
if specialuse_exists "\\Archive" { fileinto "HaveArchive"; }
