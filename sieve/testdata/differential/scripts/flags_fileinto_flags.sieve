require ["imap4flags", "fileinto"];
addflag "Ignored";
fileinto :flags ["\\Answered", "Custom"] "Lists";
keep;
