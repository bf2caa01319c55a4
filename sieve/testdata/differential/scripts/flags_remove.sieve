require ["imap4flags", "fileinto"];
setflag "\\Seen \\Flagged Custom";
removeflag "\\seen";
fileinto "Lists";
