require "fileinto";
fileinto "Café/Résumé";
