"""Demo traffic that makes the console look alive."""
