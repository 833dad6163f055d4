package controllers

// ManagesRewriteAnnotation exposes managesRewriteAnnotation to the external tests.
var ManagesRewriteAnnotation = managesRewriteAnnotation
