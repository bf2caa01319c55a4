require ["editheader", "fileinto"];
deleteheader "subject";
if not exists "subject" { fileinto "NoSubject"; }
deleteheader :contains "x-multi" "sec";
if header :is "x-multi" "first" { fileinto "FirstStays"; }
if not header :is "x-multi" "second" { fileinto "SecondGone"; }
